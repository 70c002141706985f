"""Routing: pure decisions, no I/O (no SQL, Redis, sockets or clock reads; time is an argument).

* ``routing.numbers``  — caller number normalisation (``normalize``)
* ``routing.value``    — customer value score, explanation, tier cut-offs, VIP
* ``routing.calendar`` — business hours with holidays and make-up working days
* ``routing.live``     — the live queue/agent view routing reads, and the priority-aware EWT model
* ``routing.rules``    — the routing policy from config (``RoutingRules.from_dict``)
* ``routing.decision`` — ``decide()`` → ``Decision`` → dialplan variables; ``default_decision``
"""
