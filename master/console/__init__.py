"""The director's web console and the viewers' overlay (NiceGUI), served by the master process.

``server`` runs it on the master's event loop, ``main`` only wires (gate, routes, pages),
``theme`` is the frame every console page shares, ``pages/`` has one module per page.
"""
