"""Storage: the network's partners, members, meetings and tips in a SQL database."""
