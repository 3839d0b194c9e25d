"""The Living Portrait panel, in the Compositor's and the Movie Clip Editor's sidebars, and the
progress shown in the status bar while a job runs."""
import bpy

from . import local_backend
from .job_runner import job_state

CATEGORY = "Living Portrait"


class LIVINGPORTRAIT_UL_portraits(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        if item.image is None:
            layout.label(text="(no image)", icon="ERROR")
        else:
            layout.label(text=item.image.name, icon_value=item.image.preview.icon_id if item.image.preview
                         else 0)


def draw_panel(layout, context):
    settings = context.scene.living_portrait
    state = job_state(context)

    layout.label(text="Portrait (1-32 images of one face)")
    row = layout.row()
    row.template_list("LIVINGPORTRAIT_UL_portraits", "", settings, "portraits", settings, "portrait_index", rows=2)
    col = row.column(align=True)
    col.operator("living_portrait.portrait_add", icon="ADD", text="")
    col.operator("living_portrait.portrait_remove", icon="REMOVE", text="")
    if 0 <= settings.portrait_index < len(settings.portraits):
        layout.template_ID(settings.portraits[settings.portrait_index], "image", open="image.open")

    box = layout.box()
    box.prop(settings, "source")
    if settings.source == "CLIP":
        box.template_ID(settings, "clip", open="clip.open")
        box.prop(settings, "tracking_object")
        row = box.row(align=True)
        row.prop(settings, "detector", text="")
        row.prop(settings, "face_index")
        box.operator("living_portrait.detect_landmarks", icon="TRACKING")
    elif settings.source == "RIG":
        box.prop(settings, "rig")
        box.operator("living_portrait.create_rig", icon="EMPTY_DATA")
    else:
        box.prop(settings, "performance_file")
        box.prop(settings, "file_start_frame")

    box = layout.box()
    box.prop(settings, "engine")
    box.prop(settings, "motion_mode")
    box.prop(settings, "smoothing")
    box.prop(settings, "expression_scale")
    box.label(text="Regions")
    box.row(align=True).prop(settings, "regions")
    if settings.engine in ("fewshot", "bilayer"):
        box.prop(settings, "checkpoint")
    if settings.engine == "fewshot":
        box.prop(settings, "finetune_steps")

    box = layout.box()
    box.prop(settings, "use_scene_range")
    if not settings.use_scene_range:
        row = box.row(align=True)
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_end")
    box.prop(settings, "output_dir")
    box.prop(settings, "sequence_name")

    if state.running:
        layout.progress(factor=state.progress, text=state.message)
        layout.operator("living_portrait.cancel", icon="CANCEL")
    else:
        layout.operator("living_portrait.animate", icon="PLAY")
        layout.operator("living_portrait.export_farm_job", icon="EXPORT")
        if state.message:
            layout.label(text=state.message)

    box = layout.box()
    box.prop(settings, "plane_track")
    box.operator("living_portrait.pin_to_plane", icon="PIVOT_BOUNDBOX")

    row = layout.row(align=True)
    row.label(text=state.backend_status, icon="LINKED" if state.backend_status.startswith("Connected")
              else "UNLINKED")
    row.operator("living_portrait.backend_check", icon="FILE_REFRESH", text="")
    if local_backend.LOCAL.running:
        layout.label(text=local_backend.LOCAL.describe())


class LIVINGPORTRAIT_PT_compositor(bpy.types.Panel):
    bl_label = "Living Portrait"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = CATEGORY

    @classmethod
    def poll(cls, context):
        return context.space_data is not None and context.space_data.tree_type == "CompositorNodeTree"

    def draw(self, context):
        draw_panel(self.layout, context)


class LIVINGPORTRAIT_PT_clip(bpy.types.Panel):
    bl_label = "Living Portrait"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        draw_panel(self.layout, context)


def draw_status(self, context):
    state = job_state(context)
    if state.running:
        self.layout.progress(factor=state.progress, text=state.message)


_classes = (LIVINGPORTRAIT_UL_portraits, LIVINGPORTRAIT_PT_compositor, LIVINGPORTRAIT_PT_clip)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister():
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
