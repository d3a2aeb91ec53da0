/* placeholder: creds */
