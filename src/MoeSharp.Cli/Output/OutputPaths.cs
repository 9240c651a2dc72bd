namespace MoeSharp.Cli.Output;

/// <summary>
/// Checks the paths a command will write (<c>--metrics</c>, <c>--plot</c>, <c>--save</c>) before any work, so a
/// typo costs nothing: a missing or unwritable directory is a usage error naming the option and the path. Paths that
/// collide with each other are <see cref="PathCollisions"/>'s.
/// </summary>
internal static class OutputPaths
{
    /// <summary>Checks that <paramref name="path"/> can be created or replaced as a file.</summary>
    /// <exception cref="ArgumentException">It cannot; the message names <paramref name="option"/> and the
    /// path.</exception>
    public static void CheckFile(string option, string path)
    {
        string full = Full(option, path);
        if (Directory.Exists(full))
            throw new ArgumentException($"{option} {path}: is a directory, not a file");
        string directory = Path.GetDirectoryName(full) ?? full;
        CheckWritableDirectory(option, path, directory);
    }

    /// <summary>
    /// Checks that <paramref name="path"/> is a writable directory or can be created as one (in a writable parent).
    /// </summary>
    /// <exception cref="ArgumentException">It cannot; the message names <paramref name="option"/> and the
    /// path.</exception>
    public static void CheckDirectory(string option, string path)
    {
        string full = Full(option, path);
        if (File.Exists(full))
            throw new ArgumentException($"{option} {path}: is a file, not a directory");
        if (Directory.Exists(full))
        {
            CheckWritableDirectory(option, path, full);
            return;
        }
        string parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(full)) ?? full;
        CheckWritableDirectory(option, path, parent);
    }

    /// <summary>
    /// Writes <paramref name="path"/> whole or not at all: <paramref name="write"/> fills a hidden file beside it,
    /// which then replaces <paramref name="path"/> in one rename; a failure leaves the old file (or none) and no
    /// temporary file behind. An I/O error's message names <paramref name="path"/>, not the temporary file.
    /// </summary>
    public static void ReplaceWhole(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? ".";
        string temporary = Path.Combine(
            directory,
            $".{Path.GetFileName(full)}.{Environment.ProcessId}-{Guid.NewGuid():N}{Path.GetExtension(full)}"
        );
        try
        {
            write(temporary);
            File.Move(temporary, full, overwrite: true);
        }
        catch (IOException ex) when (ex.Message.Contains(temporary, StringComparison.Ordinal))
        {
            // The user named the file, not its hidden temporary: "No space left on device : '…/loss.png'".
            throw new IOException(ex.Message.Replace(temporary, full, StringComparison.Ordinal), ex);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    private static string Full(string option, string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ArgumentException($"{option} needs a path");
        try
        {
            return Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ArgumentException($"{option} {path}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Creates and deletes an empty probe file: the one check that answers for permissions, read-only mounts and
    /// quotas alike.
    /// </summary>
    private static void CheckWritableDirectory(string option, string path, string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new ArgumentException($"{option} {path}: the directory {directory} does not exist");
        }
        string probe = Path.Combine(directory, $".moe-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (
                new FileStream(
                    probe,
                    FileMode.CreateNew,
                    FileAccess.Write,
                    FileShare.None,
                    1,
                    FileOptions.DeleteOnClose
                )
            ) { }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} {path}: cannot write in {directory} ({ex.Message})", ex);
        }
    }
}
