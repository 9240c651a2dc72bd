namespace MoeSharp.Cli.Output;

/// <summary>
/// Refuses, before any work, a command whose outputs would overwrite one of its inputs or each other
/// (<c>--metrics job.toml</c> next to <c>--config job.toml</c>, <c>--metrics x --plot x</c>, <c>--metrics</c> on a
/// file of the <c>--save</c> directory): each would be lost silently at the end of a run that otherwise succeeded.
/// Paths are compared whole (absolute, through a symbolic link to the file it names), case-insensitively where the
/// file system usually is (Windows, macOS).
/// </summary>
internal sealed class PathCollisions
{
    private static readonly StringComparison Comparison =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS()
            ? StringComparison.OrdinalIgnoreCase
            : StringComparison.Ordinal;

    private readonly List<Use> _uses = [];

    /// <summary>
    /// A path the command reads: <paramref name="path"/>, or its file <paramref name="file"/> when
    /// <paramref name="path"/> is a directory. Nothing when <paramref name="path"/> is null.
    /// </summary>
    /// <param name="option">The option that gives the path.</param>
    /// <param name="path">The value given.</param>
    /// <param name="file">The file read inside the directory <paramref name="path"/>; null: the path itself.</param>
    /// <param name="replacedBy">
    /// An output option allowed to write the same file, because the file is read in full before it is replaced
    /// (<c>--load ck --save ck</c> resumes a checkpoint and saves over it).
    /// </param>
    public PathCollisions Reads(string option, string? path, string? file = null, string? replacedBy = null) =>
        Add(option, path, file, written: false, replacedBy);

    /// <summary>A path the command writes; the parameters are those of <see cref="Reads"/>.</summary>
    public PathCollisions Writes(string option, string? path, string? file = null) =>
        Add(option, path, file, written: true, replacedBy: null);

    /// <summary>Checks every path written against every other path given.</summary>
    /// <exception cref="ArgumentException">
    /// Two are the same file and one is written: the message names both options, the values given and the full path.
    /// </exception>
    public void Check()
    {
        for (int later = 1; later < _uses.Count; later++)
        {
            Use b = _uses[later];
            for (int earlier = 0; earlier < later; earlier++)
            {
                Use a = _uses[earlier];
                if (!string.Equals(a.Full, b.Full, Comparison) || !(a.Written || b.Written) || a.Option == b.Option)
                    continue;
                if (a.ReplacedBy == b.Option || b.ReplacedBy == a.Option)
                    continue;
                // Name an output first: that is the option to change.
                var (output, other) = b.Written ? (b, a) : (a, b);
                throw new ArgumentException(
                    $"{output.Describe()}: {output.Full} is also {(other.Written ? "written" : "read")} by "
                        + $"{other.Describe()}; give each output a path of its own"
                );
            }
        }
    }

    private PathCollisions Add(string option, string? path, string? file, bool written, string? replacedBy)
    {
        if (string.IsNullOrWhiteSpace(path))
            return this;
        string? full = FullPath(file is null ? path : Path.Combine(path, file));
        // A path that cannot be resolved is left to the option's own check, which names the problem.
        if (full is not null)
            _uses.Add(new Use(option, path, file, full, written, replacedBy));
        return this;
    }

    private static string? FullPath(string path)
    {
        string full;
        try
        {
            full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return null;
        }
        try
        {
            // A link to a file is that file: --metrics link.toml overwrites what --config target.toml reads.
            return File.ResolveLinkTarget(full, returnFinalTarget: true) is { } target
                ? Path.TrimEndingDirectorySeparator(target.FullName)
                : full;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return full; // not there yet (most outputs), or a broken link: the path as given
        }
    }

    private sealed record Use(string Option, string Given, string? File, string Full, bool Written, string? ReplacedBy)
    {
        public string Describe() => File is null ? $"{Option} {Given}" : $"{Option} {Given} (its {File})";
    }
}
