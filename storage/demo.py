"""The demo network: Düsseldorf's climate pact with partners, meetings and tips."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.exchange import (
    MeetingData,
    NetworkData,
    PartnerData,
    TipData,
    import_data,
)
from storage.models import Category, Partner

CITY = "Landeshauptstadt Düsseldorf"
IHK = "IHK Düsseldorf"
HWK = "Handwerkskammer Düsseldorf"
KHS = "Kreishandwerkerschaft Düsseldorf"
WEIQIAO = "WEIQIAO Germany GmbH"
BAKERY = "Bäckerei Hennes GmbH"
LOGISTICS = "Rheinhafen Logistik Terhorst GmbH"
PRINTER = "Druckhaus Lörick KG"
IT_SERVICE = "Rheinbit IT-Service GmbH"
HOTEL = "Hotel Am Schwanenspiegel"
METALWORKS = "Metallbau Brückmann GmbH"

FOUNDED = dt.date(2022, 9, 1)

PARTNERS = (
    PartnerData(
        name=CITY,
        sector="Öffentliche Verwaltung",
        joined=FOUNDED,
        description=(
            "Initialpartner des Düsseldorfer Klimapakts mit der Wirtschaft. Ziel: "
            "Klimaneutralität der Landeshauptstadt bis zum Jahr 2035."
        ),
    ),
    PartnerData(
        name=IHK,
        sector="Industrie- und Handelskammer",
        joined=FOUNDED,
        description="Initialpartner des Düsseldorfer Klimapakts mit der Wirtschaft.",
    ),
    PartnerData(
        name=HWK,
        sector="Handwerkskammer",
        joined=FOUNDED,
        description="Initialpartner des Düsseldorfer Klimapakts mit der Wirtschaft.",
    ),
    PartnerData(
        name=KHS,
        sector="Handwerk",
        joined=FOUNDED,
        description="Initialpartner des Düsseldorfer Klimapakts mit der Wirtschaft.",
    ),
    PartnerData(
        name=WEIQIAO,
        sector="Textil und Aluminium",
        joined=dt.date(2022, 10, 1),
        description=(
            "Europäische Tochtergesellschaft und europäische Zentrale des chinesischen "
            "Konzerns Shandong Weiqiao Pioneering Group. Die Unternehmensgruppe deckt die "
            "komplette Wertschöpfungskette der Textil- und Aluminiumbranche ab. Einer der "
            "ersten 30 Klimapartner der Stadt Düsseldorf."
        ),
    ),
    PartnerData(
        name=BAKERY,
        sector="Lebensmittelhandwerk",
        joined=dt.date(2022, 10, 15),
        website="https://example.org/baeckerei-hennes",
        description="Familienbäckerei mit Backstube in Bilk und sieben Filialen.",
    ),
    PartnerData(
        name=LOGISTICS,
        sector="Logistik",
        joined=dt.date(2022, 11, 1),
        website="https://example.org/rheinhafen-logistik",
        description="Lager- und Verteillogistik am Düsseldorfer Hafen, 40 Lkw im Nahverkehr.",
    ),
    PartnerData(
        name=PRINTER,
        sector="Druck und Medien",
        joined=dt.date(2022, 11, 1),
        website="https://example.org/druckhaus-loerick",
        description="Offset- und Digitaldruckerei in Lörick, 60 Beschäftigte.",
    ),
    PartnerData(
        name=IT_SERVICE,
        sector="IT-Dienstleistungen",
        joined=dt.date(2022, 11, 15),
        website="https://example.org/rheinbit",
        description="IT-Betreuung und Rechenzentrumsdienste für den Mittelstand.",
    ),
    PartnerData(
        name=HOTEL,
        sector="Hotellerie",
        joined=dt.date(2023, 1, 10),
        description="Stadthotel mit 120 Zimmern und Tagungsbereich nahe dem Hofgarten.",
    ),
    PartnerData(
        name=METALWORKS,
        sector="Metallverarbeitung",
        joined=dt.date(2023, 2, 1),
        website="https://example.org/metallbau-brueckmann",
        description="Metallbau- und Schlosserbetrieb in Reisholz, 25 Beschäftigte.",
    ),
)

TIPS = (
    TipData(
        title="Druckluftleckagen beseitigt",
        partner=WEIQIAO,
        category=Category.PROCESSES,
        text=(
            "Mit einem Ultraschall-Lecksuchgerät haben wir an einem Vormittag 18 Leckagen im "
            "Druckluftnetz unseres Lagers gefunden und abgedichtet. Der Kompressor läuft "
            "seitdem rund ein Viertel seltener. Nachts und am Wochenende schaltet eine "
            "Zeitschaltuhr das Netz ab."
        ),
        co2_t_per_year=4.2,
    ),
    TipData(
        title="Luft-Wasser-Wärmepumpe ersetzt Gaskessel",
        partner=LOGISTICS,
        category=Category.HEAT,
        text=(
            "Der 25 Jahre alte Gaskessel für Büro und Sozialräume wurde durch eine "
            "Luft-Wasser-Wärmepumpe ersetzt. Vorher haben wir die Heizkörper geprüft und "
            "drei gegen größere getauscht, damit 45 °C Vorlauftemperatur reichen. Die "
            "Wärmepumpe läuft zum Teil mit Strom von der eigenen Photovoltaikanlage."
        ),
        co2_t_per_year=18.5,
    ),
    TipData(
        title="Touren gebündelt, Leerfahrten halbiert",
        partner=LOGISTICS,
        category=Category.MOBILITY,
        text=(
            "Eine Tourenplanungssoftware bündelt Lieferungen nach Stadtteilen. Die "
            "Leerkilometer sind um die Hälfte gesunken, der Dieselverbrauch um 9 Prozent."
        ),
        co2_t_per_year=35.0,
    ),
    TipData(
        title="Abwärme der Backöfen für Warmwasser",
        partner=BAKERY,
        category=Category.HEAT,
        text=(
            "Ein Wärmetauscher im Abgasweg der Stikkenöfen erwärmt das Brauchwasser für "
            "Backstube und Spülküche. Der Gasverbrauch für Warmwasser ist fast auf null "
            "gesunken."
        ),
        co2_t_per_year=11.0,
    ),
    TipData(
        title="Filialbelieferung mit E-Transportern",
        partner=BAKERY,
        category=Category.MOBILITY,
        text=(
            "Zwei von drei Lieferwagen sind jetzt E-Transporter. Sie laden nachts auf dem Hof "
            "der Backstube; 90 Kilometer am Tag sind kein Problem."
        ),
        co2_t_per_year=9.5,
    ),
    TipData(
        title="Photovoltaik auf dem Hallendach",
        partner=PRINTER,
        category=Category.ENERGY,
        text=(
            "250 kWp auf dem Dach der Druckhalle decken rund ein Drittel unseres Strombedarfs. "
            "Die Druckmaschinen laufen vor allem tagsüber, also dann, wenn die Anlage Strom "
            "liefert."
        ),
        co2_t_per_year=42.0,
    ),
    TipData(
        title="Recyclingpapier als Standard im Angebot",
        partner=PRINTER,
        category=Category.PROCUREMENT,
        text=(
            "Wir bieten Recyclingpapier mit Blauem Engel als Standard an und weisen den "
            "Unterschied im Angebot aus. Gut zwei Drittel der Kundschaft bleiben dabei."
        ),
        co2_t_per_year=6.0,
    ),
    TipData(
        title="Server virtualisiert und Kaltgang eingehaust",
        partner=IT_SERVICE,
        category=Category.ENERGY,
        text=(
            "38 alte Server laufen jetzt als virtuelle Maschinen auf sechs Hosts. Mit der "
            "Kaltgangeinhausung konnten wir die Kühlung um 4 °C höher einstellen."
        ),
        co2_t_per_year=15.0,
    ),
    TipData(
        title="Gebrauchte Notebooks aufbereiten statt neu kaufen",
        partner=IT_SERVICE,
        category=Category.PROCUREMENT,
        text=(
            "Leasingrückläufer bekommen eine neue SSD und einen neuen Akku und gehen in die "
            "zweite Runde. Die meisten CO2-Emissionen eines Notebooks entstehen bei der "
            "Herstellung."
        ),
        co2_t_per_year=3.1,
    ),
    TipData(
        title="Warmwasser mit Wärmepumpen und Solarthermie",
        partner=HOTEL,
        category=Category.HEAT,
        text=(
            "Zwei Wärmepumpen und 60 m² Solarkollektoren auf dem Dach bereiten das Warmwasser "
            "für 120 Zimmer. Der Gaskessel springt nur noch an sehr kalten Tagen ein."
        ),
        co2_t_per_year=25.0,
    ),
    TipData(
        title="Zimmerthermostate mit Fensterkontakt",
        partner=HOTEL,
        category=Category.BUILDINGS,
        text=(
            "Ist ein Fenster offen, regelt der Heizkörper ab; ist das Zimmer nicht belegt, "
            "senkt die Hotelsoftware die Temperatur auf 17 °C."
        ),
        co2_t_per_year=7.5,
    ),
    TipData(
        title="Hallendach gedämmt und Rolltor mit Schnelllauf",
        partner=METALWORKS,
        category=Category.BUILDINGS,
        text=(
            "Bei der Dachsanierung kamen 16 cm Dämmung auf die Werkhalle. Das neue "
            "Schnelllauftor schließt nach zehn Sekunden, die Hallenheizung läuft deutlich "
            "kürzer."
        ),
        co2_t_per_year=14.0,
    ),
    TipData(
        title="Zuschnitt optimiert, weniger Stahlverschnitt",
        partner=METALWORKS,
        category=Category.PROCESSES,
        text=(
            "Eine Schachtelsoftware plant die Zuschnitte auf der Tafel. Der Verschnitt ist von "
            "14 auf 8 Prozent gesunken; weniger Stahl zu kaufen spart am meisten CO2."
        ),
        co2_t_per_year=12.0,
    ),
    TipData(
        title="Hydraulischer Abgleich vor dem Heizungstausch",
        partner=HWK,
        category=Category.HEAT,
        text=(
            "Im Verwaltungsgebäude haben wir zuerst die Heizung hydraulisch abgeglichen und "
            "die Pumpen getauscht. Das senkt den Verbrauch sofort und ist die Voraussetzung, "
            "damit später eine Wärmepumpe effizient arbeitet."
        ),
        co2_t_per_year=5.4,
    ),
    TipData(
        title="Dienstfahrräder statt Dienstwagen",
        partner=CITY,
        category=Category.MOBILITY,
        text=(
            "Für Dienstwege unter fünf Kilometern stehen Dienstfahrräder und Pedelecs an "
            "allen großen Verwaltungsstandorten bereit. Zwei Dienstwagen wurden abgeschafft."
        ),
        co2_t_per_year=20.0,
    ),
)


def _at(day: dt.date, hour: int, minute: int, timezone: ZoneInfo) -> dt.datetime:
    """Return a network-local wall-clock time as UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), timezone).astimezone(dt.UTC)


def _weekday_after(day: dt.date, weekday: int) -> dt.date:
    """Return the first given weekday (Monday 0) on or after day."""
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _meetings(today: dt.date, timezone: ZoneInfo) -> tuple[MeetingData, ...]:
    # Upcoming meetings fall on a Tuesday or Wednesday a few weeks ahead, as real ones would.
    online_day = _weekday_after(today + dt.timedelta(weeks=2), 1)
    visit_day = _weekday_after(today + dt.timedelta(weeks=6), 2)
    breakfast_day = _weekday_after(today + dt.timedelta(weeks=9), 1)
    network_day = _weekday_after(today + dt.timedelta(weeks=12), 2)
    return (
        MeetingData(
            title="1. Netzwerktreffen",
            starts=_at(dt.date(2022, 12, 6), 14, 0, timezone),
            ends=_at(dt.date(2022, 12, 6), 17, 0, timezone),
            location="Rathaus Düsseldorf, Marktplatz 2",
            agenda=(
                "Begrüßung durch die Initialpartner\n"
                "Vorstellungsrunde der Klimapartner\n"
                "Formate und Schwerpunktthemen für den Weg zur CO2-Reduzierung festlegen"
            ),
        ),
        MeetingData(
            title="2. Netzwerktreffen",
            starts=_at(dt.date(2023, 3, 29), 14, 0, timezone),
            ends=_at(dt.date(2023, 3, 29), 17, 0, timezone),
            location="IHK Düsseldorf, Ernst-Schneider-Platz 1",
            agenda=(
                "Erfahrungsaustausch zu CO2-Einsparungen\n"
                "WEIQIAO Germany: Druckluftleckagen finden und beseitigen\n"
                "Erste CO2-Bilanzen der Klimapartner"
            ),
        ),
        MeetingData(
            title="Online-Sprechstunde: Fördermittel für Wärmepumpen",
            starts=_at(online_day, 16, 0, timezone),
            ends=_at(online_day, 17, 0, timezone),
            online_url="https://example.org/klimapakt/sprechstunde",
            agenda=(
                "Welche Förderprogramme gibt es für Wärmepumpen in Gewerbegebäuden?\n"
                "Fragen und Antworten mit der Energieberatung der Handwerkskammer"
            ),
        ),
        MeetingData(
            title="Werkstattbesuch: Abwärme nutzen in der Metallverarbeitung",
            starts=_at(visit_day, 15, 0, timezone),
            ends=_at(visit_day, 17, 30, timezone),
            location="Metallbau Brückmann GmbH, Düsseldorf-Reisholz",
            agenda=(
                "Rundgang durch die Werkhalle\n"
                "Dämmung, Schnelllauftor und optimierter Zuschnitt: was es gebracht hat\n"
                "Austausch bei Kaffee"
            ),
        ),
        MeetingData(
            title="Klimafrühstück: Dienstreisen und Pendeln",
            starts=_at(breakfast_day, 8, 30, timezone),
            ends=_at(breakfast_day, 10, 0, timezone),
            location="Hotel Am Schwanenspiegel",
            agenda="Jobrad, ÖPNV-Ticket und E-Flotte: Erfahrungen aus drei Unternehmen",
        ),
        MeetingData(
            title="Netzwerktreffen: CO2-Bilanz und Ziele 2035",
            starts=_at(network_day, 14, 0, timezone),
            ends=_at(network_day, 17, 0, timezone),
            location="Handwerkskammer Düsseldorf, Georg-Schulhoff-Platz 1",
            online_url="https://example.org/klimapakt/netzwerktreffen",
            agenda=(
                "Wo steht das Netzwerk bei den CO2-Einsparungen?\n"
                "Kurzvorträge: Wärmepumpe, Photovoltaik, Tourenplanung\n"
                "Schwerpunktthemen für das nächste Halbjahr"
            ),
        ),
    )


def demo_data(today: dt.date, timezone: ZoneInfo) -> NetworkData:
    """Build the demo network, with upcoming meetings a few weeks after today."""
    return NetworkData(partners=PARTNERS, meetings=_meetings(today, timezone), tips=TIPS)


async def load_demo(session: AsyncSession, today: dt.date, timezone: ZoneInfo) -> bool:
    """Import the demo network into a database without partners; tell whether it did."""
    if await session.scalar(select(Partner.id).limit(1)) is not None:
        return False
    await import_data(session, demo_data(today, timezone))
    return True
