"""The one exception a user sees as a message, not a traceback."""


class GenzooError(Exception):
    """A problem with the user's input (file, data, config, command line).

    The CLI prints it as one line, ``genzoo: error: <message>``, and exits with status 2.
    The message names the file or setting at fault and what is wrong with it.
    """
