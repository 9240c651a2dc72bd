namespace MoeSharp.Cli.Output;

/// <summary>
/// Replaces several files of one directory together, so that a failure the process survives leaves every old file
/// (or none, where there was none) and no new one: a reader never finds some files of the new set beside some of the
/// old. Renaming each file over its target is atomic, but a pair of renames is not: the second can fail (an
/// immutable or read-only file, a directory in the way) after the first has destroyed the old file.
/// </summary>
internal static class FileSetReplacement
{
    /// <summary>
    /// Writes every file of <paramref name="files"/> into <paramref name="directory"/> (created if missing): each is
    /// written to a hidden temporary file, in order, and once all are written all are flushed to disk; only then is
    /// each old file moved aside and its new one renamed into place. If any step fails, the files already replaced are
    /// put back from their moved-aside copies, the temporary files are deleted, a directory this call created is
    /// removed again, and the exception is rethrown.
    /// </summary>
    /// <param name="directory">The directory that holds the set.</param>
    /// <param name="files">Each file's name in <paramref name="directory"/> and what writes its bytes.</param>
    public static void Replace(string directory, IReadOnlyList<(string Name, Action<FileStream> Write)> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        string full = Path.GetFullPath(directory);
        bool created = !Directory.Exists(full);
        Directory.CreateDirectory(full);
        string tag = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
        var temporaries = new List<string>();
        // Each target replaced so far, with where its old file went (null: there was none).
        var replaced = new List<(string Target, string? Previous)>();
        try
        {
            // Every file is written before any is flushed to disk: a writer may take part in collectives (a save that
            // gathers from the other ranks), which should not wait on the previous file's fsync.
            var streams = new List<FileStream>();
            try
            {
                foreach (var (name, write) in files)
                {
                    string temporary = Path.Combine(full, $".{name}.{tag}.tmp");
                    temporaries.Add(temporary);
                    var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                    streams.Add(stream);
                    write(stream);
                }
                foreach (FileStream stream in streams)
                    stream.Flush(flushToDisk: true);
            }
            finally
            {
                foreach (FileStream stream in streams)
                    stream.Dispose();
            }
            for (int i = 0; i < files.Count; i++)
            {
                string target = Path.Combine(full, files[i].Name);
                string? previous = null;
                if (File.Exists(target))
                {
                    previous = Path.Combine(full, $".{files[i].Name}.{tag}.previous");
                    MoveAside(target, previous);
                }
                // Recorded before the rename, so that a failed rename still puts the old file back.
                replaced.Add((target, previous));
                File.Move(temporaries[i], target, overwrite: true);
            }
        }
        catch
        {
            Restore(replaced);
            DeleteQuietly(temporaries);
            if (created)
                RemoveIfEmpty(full);
            throw;
        }
        DeleteQuietly(replaced.Where(r => r.Previous is not null).Select(r => r.Previous!));
    }

    /// <summary>
    /// Renames <paramref name="target"/> to <paramref name="previous"/>; a refusal names the target, as a failed
    /// rename over it would, not the hidden name it was going to.
    /// </summary>
    private static void MoveAside(string target, string previous)
    {
        try
        {
            // overwrite: a plain rename(2); without it .NET links then unlinks, which can leave the link behind when
            // the unlink is refused.
            File.Move(target, previous, overwrite: true);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new UnauthorizedAccessException($"Access to the path '{target}' is denied.", ex);
        }
        catch (IOException ex)
        {
            throw new IOException($"{target} cannot be replaced: {ex.Message}", ex);
        }
    }

    /// <summary>Puts each moved-aside old file back over its target (or deletes a new file that had none).</summary>
    private static void Restore(List<(string Target, string? Previous)> replaced)
    {
        for (int i = replaced.Count - 1; i >= 0; i--)
        {
            var (target, previous) = replaced[i];
            try
            {
                if (previous is not null)
                    File.Move(previous, target, overwrite: true);
                else if (File.Exists(target))
                    File.Delete(target);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The failure being rethrown matters more; an old file that could not go back stays in its hidden
                // .previous copy beside the target.
            }
        }
    }

    private static void DeleteQuietly(IEnumerable<string> paths)
    {
        foreach (string path in paths)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A hidden leftover is not worth masking the outcome.
            }
        }
    }

    private static void RemoveIfEmpty(string directory)
    {
        try
        {
            if (!Directory.EnumerateFileSystemEntries(directory).Any())
                Directory.Delete(directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Same: the original failure is what the user must see.
        }
    }
}
