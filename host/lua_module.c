/* placeholder */ typedef int mx_placeholder_lua_module;
