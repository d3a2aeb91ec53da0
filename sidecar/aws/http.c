/* placeholder: http */
