/* placeholder */ typedef int mx_placeholder_repl;
