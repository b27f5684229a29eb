"""Importers for real NBA feeds: stats.nba.com play-by-play v2 and v3, the live feed, and their box scores."""
