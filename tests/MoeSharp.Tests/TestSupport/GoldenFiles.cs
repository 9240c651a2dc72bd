namespace MoeSharp.Testing;

/// <summary>
/// Finds the golden vectors in the repository's own <c>golden/</c> folder (the first folder called <c>golden</c> that
/// holds a <c>README.md</c>, found by walking up from the test binaries). Tests list the folder rather than naming
/// files, so new golden files are picked up without code changes.
/// </summary>
internal static class GoldenFiles
{
    /// <summary>Environment variable that overrides the search with an explicit folder.</summary>
    public const string OverrideVariable = "MOESHARP_GOLDEN_DIR";

    /// <summary>
    /// The golden folder: <see cref="OverrideVariable"/> when set, else the repository's <c>golden/</c> found in
    /// <see cref="AppContext.BaseDirectory"/> or one of its ancestors.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder exists; the message lists where it
    /// looked.</exception>
    public static string Directory
    {
        get
        {
            string? overridden = Environment.GetEnvironmentVariable(OverrideVariable);
            if (!string.IsNullOrEmpty(overridden))
            {
                if (System.IO.Directory.Exists(overridden))
                    return Path.GetFullPath(overridden);
                throw new DirectoryNotFoundException($"{OverrideVariable} is '{overridden}', which is not a folder");
            }
            var searched = new List<string>();
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "golden");
                if (File.Exists(Path.Combine(candidate, "README.md")))
                    return candidate;
                searched.Add(candidate);
            }
            throw new DirectoryNotFoundException(
                $"no golden folder found above {AppContext.BaseDirectory}; looked in: {string.Join(", ", searched)}. "
                    + $"Set {OverrideVariable} to point at it."
            );
        }
    }

    /// <summary>
    /// Full paths of every <c>*.safetensors</c> file in <see cref="Directory"/>, sorted by file name (ordinal).
    /// </summary>
    public static IReadOnlyList<string> SafetensorsFiles() =>
        System
            .IO.Directory.GetFiles(Directory, "*.safetensors")
            .OrderBy(p => Path.GetFileName(p), StringComparer.Ordinal)
            .ToArray();

    /// <summary>The full path of the golden file called <paramref name="fileName"/>.</summary>
    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    /// <summary>
    /// File names (not paths, so test names stay short and stable) of every golden safetensors file, for
    /// <c>[MemberData(nameof(...), MemberType = typeof(GoldenFiles))]</c>; resolve with <see cref="PathOf"/>.
    /// </summary>
    public static TheoryData<string> SafetensorsFileNames()
    {
        var data = new TheoryData<string>();
        foreach (string path in SafetensorsFiles())
            data.Add(Path.GetFileName(path));
        return data;
    }
}
