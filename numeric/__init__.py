"""Numeric backends generated from symgeo's symbolic results."""
