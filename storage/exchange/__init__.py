"""The import and export file: partners, meetings and tips as YAML."""

from storage.exchange.entries import (
    MeetingData,
    NetworkData,
    PartnerData,
    TipData,
    parse_import,
)
from storage.exchange.export import export_data
from storage.exchange.plan import Counts, ImportSummary
from storage.exchange.problems import MAX_PROBLEMS, PROBLEM_MESSAGES, ImportFileError, Problem
from storage.exchange.values import CATEGORIES, MAX_CO2_T_PER_YEAR
from storage.exchange.writing import (
    Progress,
    import_data,
    import_file,
)

__all__ = [
    "CATEGORIES",
    "MAX_CO2_T_PER_YEAR",
    "MAX_PROBLEMS",
    "PROBLEM_MESSAGES",
    "Counts",
    "ImportFileError",
    "ImportSummary",
    "MeetingData",
    "NetworkData",
    "PartnerData",
    "Problem",
    "Progress",
    "TipData",
    "export_data",
    "import_data",
    "import_file",
    "parse_import",
]
