namespace MoeSharp.Cli.Commands;

/// <summary>
/// The golden vectors that ship with the tool: the repository's <c>golden/</c> folder, copied next to <c>moe.dll</c>
/// on build, publish and in the tool package, so <c>moe verify-golden</c> without files checks the installed tool.
/// </summary>
internal static class BundledGolden
{
    /// <summary>The <c>golden</c> folder beside the running assembly.</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "golden");

    /// <summary>Every bundled <c>*.safetensors</c> file, sorted by name (ordinal).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder is missing or holds no such file.</exception>
    public static string[] Files()
    {
        string[] files = Directory.Exists(Folder) ? Directory.GetFiles(Folder, "*.safetensors") : [];
        if (files.Length == 0)
            throw new DirectoryNotFoundException(
                $"verify-golden: no FILES given and no bundled golden files in {Folder}"
            );
        return files.OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray();
    }
}
