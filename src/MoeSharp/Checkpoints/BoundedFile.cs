namespace MoeSharp.Checkpoints;

/// <summary>
/// Reads a small text file whole, refusing one larger than its kind can plausibly be before reading it all: a
/// <c>config.json</c> or an index that is really <c>/dev/zero</c>, a symbolic link to a weight shard, or a multi-GB
/// file would otherwise be read into memory in full (an out-of-memory failure, or a read that never ends).
/// </summary>
internal static class BoundedFile
{
    /// <summary>
    /// The bytes of <paramref name="path"/>, at most <paramref name="maxBytes"/> of them; the file is read through
    /// a stream, so a device or pipe that never ends is cut off at the bound too.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="maxBytes">The most bytes such a file may hold.</param>
    /// <param name="what">Names the kind of file in the message, e.g. <c>a config.json</c>.</param>
    /// <exception cref="InvalidDataException">The file holds more than <paramref name="maxBytes"/>.</exception>
    public static byte[] ReadAllBytes(string path, int maxBytes, string what)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        // A regular file tells its length: refused before reading, or read into one array of that length. A device
        // or pipe says 0 (or cannot seek) and is read in pieces up to the bound.
        long length = stream.CanSeek ? stream.Length : 0;
        if (length > maxBytes)
            throw TooLarge(path, maxBytes, what);
        if (length > 0)
        {
            byte[] whole = new byte[length];
            int got = stream.ReadAtLeast(whole, whole.Length, throwOnEndOfStream: false);
            if (got == whole.Length && stream.ReadByte() < 0)
                return whole;
            stream.Position = 0; // it changed under us: read it as a stream
        }
        var kept = new MemoryStream();
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            if (kept.Length + read > maxBytes)
                throw TooLarge(path, maxBytes, what);
            kept.Write(buffer, 0, read);
        }
        return kept.ToArray();
    }

    private static InvalidDataException TooLarge(string path, int maxBytes, string what) =>
        new($"{path}: more than {maxBytes} bytes, more than {what} can plausibly hold (is it the right file?)");

    /// <summary><see cref="ReadAllBytes"/> as UTF-8 text (a byte-order mark is skipped).</summary>
    public static string ReadAllText(string path, int maxBytes, string what)
    {
        byte[] bytes = ReadAllBytes(path, maxBytes, what);
        using var reader = new StreamReader(new MemoryStream(bytes), System.Text.Encoding.UTF8, true);
        return reader.ReadToEnd();
    }
}
