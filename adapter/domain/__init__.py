"""The business as plain Python: rules and state machines, no I/O.

May import only the standard library and ``adapter.errors``: never pika, sqlmodel, pkcs11,
lxml. Commands are imperative, events past tense, handlers are verbs.
"""
