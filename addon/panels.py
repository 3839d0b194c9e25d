"""The Living Portrait panel, in the Compositor's and the Movie Clip Editor's sidebars, and the
progress shown in the status bar while a job runs.

The panel is grouped the way Blender's own editors group settings: a main panel (what stops Animate,
with the button that fixes it; Animate or the running job's stage and Cancel) and sub-panels for the
portrait, the performance, the engine, the output, pinning onto a plate and the backend. Each section is
a function of (layout, context), so ``draw_panel`` can draw them all in one layout too (scripts and
tests that have no window).
"""
import bpy

from . import local_backend, validation
from .job_runner import job_state

CATEGORY = "Living Portrait"


class LIVINGPORTRAIT_UL_portraits(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        if item.image is None:
            layout.label(text="(no image)", icon="ERROR")
        else:
            layout.label(text=item.image.name, icon_value=item.image.preview.icon_id if item.image.preview
                         else 0)


def draw_main(layout, context):
    """Problems before the click, then Animate (or the running job's stage and Cancel)."""
    state = job_state(context)
    if state.running:
        layout.progress(factor=state.progress, text=state.message)
        layout.operator("living_portrait.cancel", icon="CANCEL")
        return
    for problem in validation.problems(context):
        box = layout.box()
        box.label(text=problem.text, icon="ERROR")
        if problem.fix:
            box.operator(problem.fix, text=problem.fix_text)
    layout.operator("living_portrait.animate", icon="PLAY")
    layout.operator("living_portrait.export_farm_job", icon="EXPORT")
    if state.message:
        layout.label(text=state.message)


def draw_portrait(layout, context):
    settings = context.scene.living_portrait
    layout.label(text="1-32 images of one face")
    row = layout.row()
    row.template_list("LIVINGPORTRAIT_UL_portraits", "", settings, "portraits", settings, "portrait_index", rows=2)
    col = row.column(align=True)
    col.operator("living_portrait.portrait_add", icon="ADD", text="")
    col.operator("living_portrait.portrait_remove", icon="REMOVE", text="")
    if 0 <= settings.portrait_index < len(settings.portraits):
        layout.template_ID(settings.portraits[settings.portrait_index], "image", open="image.open")


def draw_performance(layout, context):
    settings = context.scene.living_portrait
    layout.prop(settings, "source")
    if settings.source == "CLIP":
        layout.template_ID(settings, "clip", open="clip.open")
        if settings.clip is not None:
            layout.prop_search(settings, "tracking_object", settings.clip.tracking, "objects")
        else:
            layout.prop(settings, "tracking_object")
        row = layout.row(align=True)
        row.prop(settings, "detector", text="")
        row.prop(settings, "face_index")
        layout.operator("living_portrait.detect_landmarks", icon="TRACKING")
    elif settings.source == "RIG":
        layout.prop(settings, "rig")
        layout.operator("living_portrait.create_rig", icon="EMPTY_DATA")
    else:
        layout.prop(settings, "performance_file")
        layout.prop(settings, "file_start_frame")


def draw_engine(layout, context):
    settings = context.scene.living_portrait
    layout.prop(settings, "engine")
    layout.prop(settings, "motion_mode")
    layout.prop(settings, "smoothing")
    layout.prop(settings, "expression_scale")
    layout.label(text="Regions")
    layout.row(align=True).prop(settings, "regions")
    if settings.engine in ("fewshot", "bilayer"):
        layout.prop(settings, "checkpoint")
    if settings.engine == "fewshot":
        layout.prop(settings, "finetune_steps")


def draw_output(layout, context):
    settings = context.scene.living_portrait
    layout.prop(settings, "use_scene_range")
    if not settings.use_scene_range:
        row = layout.row(align=True)
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_end")
    layout.prop(settings, "output_dir")
    layout.prop(settings, "sequence_name")


def draw_plate(layout, context):
    settings = context.scene.living_portrait
    layout.template_ID(settings, "plate", open="clip.open")
    plate = settings.plate or settings.clip
    camera = None
    if plate is not None:
        camera = next((o for o in plate.tracking.objects if o.is_camera), None)
    if camera is not None:
        layout.prop_search(settings, "plane_track", camera, "plane_tracks")
    else:
        layout.prop(settings, "plane_track")
    layout.operator("living_portrait.pin_to_plane", icon="PIVOT_BOUNDBOX")


def backend_status(context) -> tuple[str, str]:
    """(text, icon) for the backend row: a local backend that exited says so, whatever was checked."""
    local = local_backend.LOCAL
    if local.process is not None and not local.running:
        return f"Local backend exited (code {local.process.returncode})", "ERROR"
    status = job_state(context).backend_status
    return status, "LINKED" if status.startswith("Connected") else "UNLINKED"


def draw_backend(layout, context):
    text, icon = backend_status(context)
    row = layout.row(align=True)
    row.label(text=text, icon=icon)
    row.operator("living_portrait.backend_check", icon="FILE_REFRESH", text="")
    row = layout.row(align=True)
    if local_backend.LOCAL.running:
        layout.label(text=local_backend.LOCAL.describe())
        row.operator("living_portrait.backend_stop", icon="CANCEL")
    else:
        row.operator("living_portrait.backend_start", icon="PLAY")


SECTIONS = (("portrait", "Portrait", draw_portrait), ("performance", "Performance", draw_performance),
            ("engine", "Engine", draw_engine), ("output", "Output", draw_output),
            ("plate", "Pin to Plate", draw_plate), ("backend", "Backend", draw_backend))


def draw_panel(layout, context):
    """Everything in one layout, in the panel's order (for scripts and tests without a window)."""
    draw_main(layout, context)
    for _name, _label, draw in SECTIONS:
        draw(layout, context)


class _MainPanel:
    bl_label = "Living Portrait"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        draw_main(self.layout, context)


class LIVINGPORTRAIT_PT_compositor(_MainPanel, bpy.types.Panel):
    bl_space_type = "NODE_EDITOR"

    @classmethod
    def poll(cls, context):
        return context.space_data is not None and context.space_data.tree_type == "CompositorNodeTree"


class LIVINGPORTRAIT_PT_clip(_MainPanel, bpy.types.Panel):
    bl_space_type = "CLIP_EDITOR"


def _sub_panel(parent, name: str, label: str, draw_section):
    """A sub-panel class of ``parent`` drawing one section."""
    def draw(self, context):
        self.layout.use_property_split = False
        draw_section(self.layout, context)

    attrs = {"bl_label": label, "bl_space_type": parent.bl_space_type, "bl_region_type": "UI",
             "bl_category": CATEGORY, "bl_parent_id": parent.__name__, "draw": draw,
             "bl_options": {"DEFAULT_CLOSED"} if name in ("plate", "backend") else set()}
    if hasattr(parent, "poll"):
        attrs["poll"] = classmethod(lambda cls, context: parent.poll(context))
    return type(f"{parent.__name__}_{name}", (bpy.types.Panel,), attrs)


def draw_status(self, context):
    state = job_state(context)
    if state.running:
        self.layout.progress(factor=state.progress, text=state.message)


_classes = [LIVINGPORTRAIT_UL_portraits, LIVINGPORTRAIT_PT_compositor, LIVINGPORTRAIT_PT_clip]
for _parent in (LIVINGPORTRAIT_PT_compositor, LIVINGPORTRAIT_PT_clip):
    _classes += [_sub_panel(_parent, name, label, draw) for name, label, draw in SECTIONS]


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister():
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
