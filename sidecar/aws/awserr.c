/* placeholder: awserr */
