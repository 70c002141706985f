"""Customers on the call path: caller identification, the number → customer cache, value scores and tiers.

Modules (imported one by one, so the pure parts stay free of SQL and Redis imports):

- ``valuation``: facts → stored score, tier and explained components (pure; the demo generator uses it too).
- ``directory``: ``CustomerDirectory.identify`` (blocking SQL, run in a worker thread).
- ``cache``: ``SummaryCache`` (Redis or in-process) of identities by number, plus the 24-hour call counter.
- ``scores``: ``recompute_all`` (streamed, whole base), ``rescore_customer``, ``NightlyRecompute``.
- ``changes``: hooks the write paths call so scores and the cache follow the data.
"""
