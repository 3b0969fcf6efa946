"""Foundations shared by the domain packages :mod:`dems` and :mod:`tofsims`.

The two domains never import each other nor :mod:`pipelines`; what both need is defined once
here: the reader registry and content sniffing (:mod:`operando_core.readers`) and the typed
options of the workflows (:mod:`operando_core.options`). Light to import: no numpy, no xarray.
"""
