"""Living Portrait: animate a portrait in Blender from a face performance, frames streamed as EXR.

The add-on stays thin: it gathers Blender data (images, clip tracks, a landmark rig), talks to the
backend over the wire package vendored as ``.wire``, and wires the returned EXR sequence into the
compositor. Blender-free logic (frame mapping, track/array conversion) lives in modules that import no
``bpy`` so plain pytest can test them; this file imports the Blender modules only in ``register`` for
the same reason.
"""
_modules = []


def register():
    from . import animate, farm_export, preferences, properties, operators, panels

    _modules[:] = [preferences, properties, operators, animate, farm_export, panels]
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
    _modules.clear()
