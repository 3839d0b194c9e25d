"""The compositor side: show an EXR sequence through an Image node, its matte wired, pinned to a plane.

Blender 5.0 keeps the compositor in a node group (``scene.compositing_node_group``, output through a
Group Output); 4.2-4.5 in ``scene.node_tree`` (``scene.use_nodes``, output through a Composite node).
Only this module knows the difference.
"""
import os

import bpy

from .frame_mapping import SequenceTiming
from .wire.errors import BadInput
from .wire.naming import frame_filename

NODE_SEQUENCE = "Living Portrait"
NODE_MATTE = "Living Portrait Matte"
NODE_PLATE = "Living Portrait Plate"
NODE_PIN = "Living Portrait Pin"
NODE_OVER = "Living Portrait Over"
MATTE_SOCKET = "matte"  # the EXR's `matte.Y` channel shows up as this Image node output
_NODE_GROUP_COMPOSITOR = bpy.app.version >= (5, 0, 0)


def compositor_tree(scene):
    """The scene's compositor node tree, created (and enabled) if it has none."""
    return _compositor_tree(scene)[0]


def _compositor_tree(scene):
    """(tree, fresh): ``fresh`` when this call created it, so it holds only Blender's defaults."""
    if _NODE_GROUP_COMPOSITOR:
        tree = scene.compositing_node_group
        if tree is None:
            tree = bpy.data.node_groups.new(f"{scene.name} Compositor", "CompositorNodeTree")
            scene.compositing_node_group = tree
            return tree, True
        return tree, False
    fresh = scene.node_tree is None
    scene.use_nodes = True  # 4.x fills a new tree with Render Layers -> Composite
    if fresh:
        # Left there, the Render Layers node renders the whole 3D scene on every F12 for nothing.
        for node in [n for n in scene.node_tree.nodes if n.bl_idname == "CompositorNodeRLayers"]:
            scene.node_tree.nodes.remove(node)
    return scene.node_tree, fresh


def output_input(tree):
    """The socket whose input is the compositor's result (Group Output in 5.0, Composite before)."""
    if _NODE_GROUP_COMPOSITOR:
        if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT" for item in tree.interface.items_tree):
            tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
        if node is None:
            node = tree.nodes.new("NodeGroupOutput")
            node.location = (600, 0)
        return node.inputs[0]
    node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
    if node is None:
        node = tree.nodes.new("CompositorNodeComposite")
        node.location = (600, 0)
    return node.inputs["Image"]


def _node(tree, name, idname, location):
    node = tree.nodes.get(name)
    if node is None or node.bl_idname != idname:
        if node is not None:
            tree.nodes.remove(node)
        node = tree.nodes.new(idname)
        node.name = node.label = name
        node.location = location
    return node


def _link_if_free(tree, from_socket, to_socket, fresh: bool):
    """Link unless the artist already feeds ``to_socket`` from elsewhere (their comp is theirs); a
    tree this add-on just created only holds Blender's default link, which may go."""
    if fresh or not to_socket.is_linked or to_socket.links[0].from_node.name == NODE_MATTE:
        tree.links.new(from_socket, to_socket)


def show_sequence(scene, first_file: str, timing: SequenceTiming):
    """Point the Image node at the EXR sequence starting with ``first_file`` and wire it with its matte.

    The node reads ``NAME.####.exr`` as a sequence placed by ``timing``; a Set Alpha node takes the
    beauty and the ``matte`` layer, so the result carries the moving region as alpha for comping.
    Returns the Image node. Safe to call again (updates the nodes in place).
    """
    tree, fresh = _compositor_tree(scene)
    image = bpy.data.images.load(first_file, check_existing=True)
    image.source = "SEQUENCE"
    node = _node(tree, NODE_SEQUENCE, "CompositorNodeImage", (-300, 0))
    node.image = image
    node.frame_start = timing.frame_start
    node.frame_offset = timing.frame_offset
    node.frame_duration = timing.frame_duration
    node.use_cyclic = False
    node.use_auto_refresh = True
    image.buffers_free()  # frames of an earlier run under the same name must not linger in the cache
    matte = _node(tree, NODE_MATTE, "CompositorNodeSetAlpha", (0, 0))
    tree.links.new(node.outputs[0], matte.inputs["Image"])
    if MATTE_SOCKET in node.outputs:
        tree.links.new(node.outputs[MATTE_SOCKET], matte.inputs["Alpha"])
    if fresh:
        # A comp of its own has no plate yet: the moved region goes over the animated frame itself (an
        # Alpha Over whose background is where the artist's plate goes), so every frame shows the whole
        # portrait, the first (the neutral face, where nothing moved and the matte is empty) included.
        over = _node(tree, NODE_OVER, "CompositorNodeAlphaOver", (300, 0))
        background, foreground = [s for s in over.inputs if s.type == "RGBA"][:2]
        tree.links.new(node.outputs[0], background)
        tree.links.new(matte.outputs[0], foreground)
        tree.links.new(over.outputs[0], output_input(tree))
    else:
        _link_if_free(tree, matte.outputs[0], output_input(tree), fresh)
    return node


def refresh_sequence(scene) -> None:
    """Show frames that landed since the last look.

    Frees the sequence's cached frames (a file may have been rewritten) and tags the compositor for
    re-evaluation; Blender loads the shown frame lazily. ``Image.reload()`` would instead load it at
    once, on the main thread (about 0.3 s per 1080p EXR here).
    """
    tree = compositor_tree(scene)
    node = tree.nodes.get(NODE_SEQUENCE)
    if node is not None and node.image is not None:
        node.image.buffers_free()
        tree.update_tag()


def pin_to_plane(scene, clip, tracking_object: str, plane_track: str):
    """Pin the animated sequence onto a plane track of ``clip`` over the plate.

    Movie Clip (the plate) -> Alpha Over background; the whole animated frame (the portrait fills the
    plane, not only its moving region) -> Plane Track Deform -> Alpha Over foreground -> the
    compositor's output. Returns the Plane Track Deform node.
    """
    tree = compositor_tree(scene)
    sequence = tree.nodes.get(NODE_SEQUENCE)
    if sequence is None:
        raise BadInput("no animated sequence in the compositor yet; run Animate first, then pin it")
    plate = _node(tree, NODE_PLATE, "CompositorNodeMovieClip", (-300, 400))
    plate.clip = clip
    pin = _node(tree, NODE_PIN, "CompositorNodePlaneTrackDeform", (300, 150))
    pin.clip = clip
    pin.tracking_object = tracking_object
    pin.plane_track_name = plane_track
    over = _node(tree, NODE_OVER, "CompositorNodeAlphaOver", (600, 250))
    tree.links.new(sequence.outputs[0], pin.inputs["Image"])
    background, foreground = [s for s in over.inputs if s.type == "RGBA"][:2]
    tree.links.new(plate.outputs["Image"], background)
    tree.links.new(pin.outputs["Image"], foreground)
    out = output_input(tree)
    tree.links.new(over.outputs[0], out)
    return pin


def first_file_path(out_dir: str, name: str, first_frame: int) -> str:
    """Path of the first frame file of the sequence, as the wire names it."""
    return os.path.join(out_dir, frame_filename(name, first_frame))
