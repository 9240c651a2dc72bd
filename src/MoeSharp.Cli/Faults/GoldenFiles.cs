namespace MoeSharp.Cli.Faults;

/// <summary>
/// The files <c>moe verify-golden</c> replays: each argument, a directory standing for its .safetensors files.
/// </summary>
internal static class GoldenFiles
{
    /// <summary>The arguments with each directory replaced by its <c>*.safetensors</c> files, in name order.</summary>
    /// <exception cref="ArgumentException">A directory holds no .safetensors file (the message names it).</exception>
    public static IReadOnlyList<string> Expand(IEnumerable<string> arguments)
    {
        var files = new List<string>();
        foreach (string argument in arguments)
        {
            if (!Directory.Exists(argument))
            {
                files.Add(argument);
                continue;
            }
            string[] inside = Directory.GetFiles(argument, "*.safetensors");
            if (inside.Length == 0)
                throw new ArgumentException($"'{argument}' is a directory with no .safetensors files");
            Array.Sort(inside, StringComparer.Ordinal);
            files.AddRange(inside);
        }
        return files;
    }
}
