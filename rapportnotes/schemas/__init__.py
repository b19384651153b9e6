"""Marshmallow schemas named by direction: ``XIn`` (create), ``XPatch`` (update), ``XOut``."""
