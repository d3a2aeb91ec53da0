/* placeholder: endpoint */
