"""Who may act where: principals behind tokens, staff tokens, passwords."""
