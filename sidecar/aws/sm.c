/* placeholder: sm */
