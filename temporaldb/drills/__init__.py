"""Restore and upgrade drills: the engines the runbooks in runbooks/ drive."""
