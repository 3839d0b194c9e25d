"""Add-on preferences: where the backend is, how to start a local one, keys, output and timeouts."""
import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from . import local_backend


class LivingPortraitPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: StringProperty(
        name="Backend Address", default="tcp://127.0.0.1:5557",
        description="ZeroMQ address of the Living Portrait backend (loopback by default)")
    connect_timeout: FloatProperty(
        name="Connect Timeout", default=5.0, min=0.5, max=120.0, unit="TIME_ABSOLUTE",
        description="Seconds to wait for the backend's handshake before reporting it unreachable")
    silence_timeout: FloatProperty(
        name="Job Silence Timeout", default=30.0, min=5.0, max=3600.0, unit="TIME_ABSOLUTE",
        description="Seconds a running job may hear nothing from the backend (its heartbeats included) "
                    "before it is reported lost; background jobs keep reconnecting for this long")
    local_command: StringProperty(
        name="Backend Command", default="livingportrait", subtype="FILE_PATH",
        description="The livingportrait command (or its full path) used to start a local backend; "
                    "'serve --bind ADDRESS' is appended")
    start_local_automatically: BoolProperty(
        name="Start Local Backend When Needed", default=False,
        description="When a job finds no backend at a loopback address, start one with the command above")
    curve_server_public_key: StringProperty(
        name="Server Public Key", default="", subtype="FILE_PATH",
        description="The backend's public NAME.key file (from `livingportrait keys generate`); "
                    "empty on loopback")
    curve_client_secret_key: StringProperty(
        name="Client Secret Key", default="", subtype="FILE_PATH",
        description="This client's NAME.key_secret file (keep it private); empty on loopback")
    default_output: StringProperty(
        name="Default Output Folder", default="//living_portrait/", subtype="DIR_PATH",
        description="Where EXR frames go when the panel names no folder ('//' is the .blend's folder)")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "address")
        row = col.row(align=True)
        row.prop(self, "connect_timeout")
        row.prop(self, "silence_timeout")
        box = layout.box()
        box.label(text="Local Backend", icon="CONSOLE")
        box.prop(self, "local_command")
        box.prop(self, "start_local_automatically")
        row = box.row(align=True)
        running = local_backend.LOCAL.running
        row.operator("living_portrait.backend_start", icon="PLAY")
        row.operator("living_portrait.backend_stop", icon="PAUSE")
        row.operator("living_portrait.backend_check", icon="FILE_REFRESH")
        box.label(text=local_backend.LOCAL.describe() if running else "Not started from Blender")
        box = layout.box()
        box.label(text="Remote Backend (CurveZMQ)", icon="LOCKED")
        box.prop(self, "curve_server_public_key")
        box.prop(self, "curve_client_secret_key")
        layout.prop(self, "default_output")


def get(context=None):
    """This add-on's preferences."""
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


def register():
    bpy.utils.register_class(LivingPortraitPreferences)


def unregister():
    bpy.utils.unregister_class(LivingPortraitPreferences)
