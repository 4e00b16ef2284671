"""soru: smart optimistic rollups in the style of Tezos Smart Rollups.

Layers, low to high (a layer imports only layers below it; ``tests/unit/test_layers.py``
walks the imports): ``base`` < ``crypto`` < ``encoding`` < ``merkle`` < ``wasm`` < ``pvm`` <
``protocol`` < ``l1`` < ``node`` < ``client`` < ``tools`` < ``cli``.
"""

__version__ = "0.1.0"
