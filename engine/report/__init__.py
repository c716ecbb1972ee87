"""The run report as one self-contained HTML page (``engine report day.json --html day.html``).

- :mod:`engine.report.page`: :func:`~engine.report.page.render_html` and ``write_html``, and the
  check that a JSON file is a run report;
- :mod:`engine.report.sections`: the text sections (header, cards, tables);
- :mod:`engine.report.figures`: the charts of the day drawn from the report's timeline;
- :mod:`engine.report.charts`: the SVG kit those charts are drawn with (time axis, ticks, plot);
- :mod:`engine.report.text`: escaping and the report's exact numbers and times as text;
- :mod:`engine.report.style`: colours and the stylesheet.

Import the module you need (``from engine.report.page import write_html``).
"""
