"""The HTML reports: a toy model beside its reconstruction, and any extraction run on its own.

- :mod:`glassbox.report.demo_page`: the demo's page (``build_report``), one hidden layer;
- :mod:`glassbox.report.extraction`: the page of a plain ``glassbox extract`` run, any depth,
  with :mod:`glassbox.report.extraction_data` (its numbers);
- :mod:`glassbox.report.numbers`, :mod:`glassbox.report.reading` (sentences),
  :mod:`glassbox.report.sections`, :mod:`glassbox.report.figures`,
  :mod:`glassbox.report.lineplot`, :mod:`glassbox.report.html`: the parts both pages share;
- :mod:`glassbox.report.line_file`: the queried line saved beside a run (``line.json``).

May import toy, extract (result types), verify, oracle and the ground floor; never demo,
serve, sweep or the CLI.
"""
