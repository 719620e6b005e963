"""The reporting room: figures (PNG), the Markdown sections of ``docs/*.md`` and JSON records.

* :mod:`lsi.report.figures` - Figs. 4, 6, 7, 8 of the paper and Table 1 as curves;
* :mod:`lsi.report.mask_figures` - the learned masks as a grid (Fig. 3);
* :mod:`lsi.report.markdown` - replace or insert one ``## `` section of a Markdown document;
* :mod:`lsi.report.records` - JSON records written atomically (a crash keeps the previous record).
"""
