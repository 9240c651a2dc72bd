namespace MoeSharp.Mpi.Tests;

/// <summary>
/// The golden vectors: <c>MOESHARP_GOLDEN_DIR</c>, else the repository's <c>golden/</c> folder (the first folder
/// called <c>golden</c> holding a <c>README.md</c> in the test assembly's folder or an ancestor), as MoeSharp.Tests
/// finds them.
/// </summary>
public static class GoldenFolder
{
    /// <summary>Full paths of every <c>*.safetensors</c> file, sorted by name (ordinal).</summary>
    /// <exception cref="DirectoryNotFoundException">No golden folder; the message says where it looked.</exception>
    public static IReadOnlyList<string> SafetensorsFiles()
    {
        string? overridden = Environment.GetEnvironmentVariable("MOESHARP_GOLDEN_DIR");
        string? folder = string.IsNullOrEmpty(overridden) ? null : overridden;
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); folder is null && dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "golden");
            if (File.Exists(Path.Combine(candidate, "README.md")))
                folder = candidate;
        }
        if (folder is null || !Directory.Exists(folder))
            throw new DirectoryNotFoundException(
                $"no golden folder above {AppContext.BaseDirectory}; set MOESHARP_GOLDEN_DIR"
            );
        return Directory
            .GetFiles(folder, "*.safetensors")
            .OrderBy(p => Path.GetFileName(p), StringComparer.Ordinal)
            .ToArray();
    }
}
