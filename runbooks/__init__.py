"""The drill scripts (restore_drill.py, upgrade_drill.py); the checklists are the .md files beside them."""
