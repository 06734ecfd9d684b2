"""The course as a book: a static web site of the chapters, labs and study pages.

- ``build.py``: ``python -m tools.book.build`` renders the site into ``_build/html``
  (``make book``), offline; nothing on its pages is loaded from another host.
- ``serve.py``: ``python -m tools.book.serve`` serves it on 127.0.0.1 (``make book-serve``).
- ``templates/book/``: the nbconvert template (it extends JupyterLab's);
  ``static/``: the book's stylesheet and its one script.

Mermaid, which draws the chapters' diagrams, is installed from the npm registry by
``tools/fetch_web_assets.py`` when ``make`` runs (``web_assets.lock``).
"""
