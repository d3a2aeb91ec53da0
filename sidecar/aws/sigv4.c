/* placeholder: sigv4 */
