/* placeholder: retry */
