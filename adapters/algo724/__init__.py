"""Algo724 Cadenza Fermata (document 003, VENUES.md section 4): REST order entry, its codec and sandbox."""
