"""Every setting defined once (``table``), parsed once (``kinds``), put on command lines once
(``command_line``).  Imports nothing of the project: every package may read it."""

from setting_defs.command_line import add_flags, check_folders, from_environment, texts, values
from setting_defs.kinds import SettingError, check_file, check_folder, check_writable, parse_count, parse_list
from setting_defs.table import SETTINGS, SettingDef, fleet_names, measuring_fields, setting, settings_for

__all__ = ["SETTINGS", "SettingDef", "SettingError", "add_flags", "check_file", "check_folder", "check_folders", "check_writable",
           "fleet_names", "from_environment", "measuring_fields", "parse_count", "parse_list", "setting",
           "settings_for", "texts", "values"]
