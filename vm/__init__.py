"""The contract VM: a strict Python subset compiled to verified, gas-metered bytecode.

Modules: ``compiler`` (source -> Module), ``bytecode`` (serialized format,
code hash), ``verifier`` (static checks), ``interpreter`` (``prepare``/``load``
and ``execute``), ``methods`` (metered methods on values), ``host`` (the host
protocol and an in-memory host), ``values`` (canonical value encoding),
``jsonvalues`` (JSON convention), ``gas`` (the gas table and every limit),
``opcodes``, ``errors``. No I/O happens in this package: the interpreter
reaches the world only through the host object it is given.
"""
