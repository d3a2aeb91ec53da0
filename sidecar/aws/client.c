/* placeholder: client */
