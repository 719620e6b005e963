"""The reporting room: figures (PNG) and the Markdown sections of ``docs/*.md``.

* :mod:`lsi.report.figures` - Figs. 4, 6, 7, 8 of the paper and Table 1 as curves;
* :mod:`lsi.report.mask_figures` - the learned masks as a grid (Fig. 3);
* :mod:`lsi.report.markdown` - replace or insert one ``## `` section of a Markdown document.
"""
