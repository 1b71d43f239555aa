/* placeholder: being written */ typedef int mx_placeholder_credentials;
