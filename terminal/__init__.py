"""The cashier terminal (Textual). It talks to the server only over HTTP and imports
``shared/`` but never ``server/``; ``client``, ``config``, ``i18n`` and ``documents`` run
without any UI."""
