"""Pieces every domain shares: who is acting, id numbers, masking."""
