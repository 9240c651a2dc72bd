using MoeSharp.Cli.Output;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>moe train --save</c> replaces a checkpoint's two files together: a save that fails part way leaves the previous
/// checkpoint as it was (it replaced <c>trainer.safetensors</c> and then failed on <c>layer.safetensors</c>, leaving
/// a pair at different steps that <c>--load</c> refuses), and no new directory or temporary file behind.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CheckpointSaveFailureTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Save_SecondFileFails_LeavesTheFirstFileAsItWas()
    {
        string checkpoint = Path.Combine(_dir, "ck");
        Assert.Equal(0, Invoke(["train", "--steps", "2", "--save", checkpoint, .. SmallTrain]).ExitCode);
        string trainer = Path.Combine(checkpoint, "trainer.safetensors");
        byte[] before = File.ReadAllBytes(trainer);
        // A directory where layer.safetensors goes: renaming the new file over it fails, after trainer.safetensors
        // (written first) was renamed into place.
        string layer = Path.Combine(checkpoint, "layer.safetensors");
        File.Delete(layer);
        Directory.CreateDirectory(layer);

        CliOutcome result = Invoke(["train", "--steps", "4", "--save", checkpoint, .. SmallTrain]);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Equal(before, File.ReadAllBytes(trainer));
        Assert.Equal(["layer.safetensors", "trainer.safetensors"], Entries(checkpoint));
    }

    [Fact]
    public void Load_AfterASaveKilledBetweenItsRenames_NamesTheMovedAsideFile()
    {
        string checkpoint = Path.Combine(_dir, "ck");
        string later = Path.Combine(_dir, "later");
        Assert.Equal(0, Invoke(["train", "--steps", "2", "--save", checkpoint, .. SmallTrain]).ExitCode);
        Assert.Equal(0, Invoke(["train", "--steps", "4", "--save", later, .. SmallTrain]).ExitCode);
        // What a kill between the renames leaves: the new trainer.safetensors in, the old one aside.
        string trainer = Path.Combine(checkpoint, "trainer.safetensors");
        File.Move(trainer, Path.Combine(checkpoint, ".trainer.safetensors.1-a.previous"));
        File.Copy(Path.Combine(later, "trainer.safetensors"), trainer);

        string line = AssertUsageError(Invoke(["train", "--steps", "6", "--load", checkpoint, .. SmallTrain]));

        Assert.EndsWith(
            "(an interrupted save?); the save moved the old files aside to .trainer.safetensors.1-a.previous",
            line
        );
    }

    [Fact]
    public void Replace_SecondWriteFails_KeepsEveryOldFileAndNoTemporary()
    {
        File.WriteAllText(Path.Combine(_dir, "a"), "old a");
        File.WriteAllText(Path.Combine(_dir, "b"), "old b");

        Assert.Throws<IOException>(() =>
            FileSetReplacement.Replace(_dir, [("a", Text("new a")), ("b", _ => throw new IOException("disk full"))])
        );

        Assert.Equal("old a", File.ReadAllText(Path.Combine(_dir, "a")));
        Assert.Equal("old b", File.ReadAllText(Path.Combine(_dir, "b")));
        Assert.Equal(["a", "b"], Entries(_dir));
    }

    [Fact]
    public void Replace_SecondRenameFails_PutsTheFirstOldFileBack()
    {
        File.WriteAllText(Path.Combine(_dir, "a"), "old a");
        Directory.CreateDirectory(Path.Combine(_dir, "b"));

        Assert.ThrowsAny<IOException>(() =>
            FileSetReplacement.Replace(_dir, [("a", Text("new a")), ("b", Text("new b"))])
        );

        Assert.Equal("old a", File.ReadAllText(Path.Combine(_dir, "a")));
        Assert.Equal(["a", "b"], Entries(_dir));
    }

    [Fact]
    public void Replace_FirstWriteFailsInANewDirectory_RemovesTheDirectory()
    {
        string directory = Path.Combine(_dir, "new");

        Assert.Throws<IOException>(() =>
            FileSetReplacement.Replace(directory, [("a", _ => throw new IOException("disk full")), ("b", Text("b"))])
        );

        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public void Replace_Succeeds_ReplacesEveryFileAndLeavesNothingElse()
    {
        File.WriteAllText(Path.Combine(_dir, "a"), "old a");

        FileSetReplacement.Replace(_dir, [("a", Text("new a")), ("b", Text("new b"))]);

        Assert.Equal("new a", File.ReadAllText(Path.Combine(_dir, "a")));
        Assert.Equal("new b", File.ReadAllText(Path.Combine(_dir, "b")));
        Assert.Equal(["a", "b"], Entries(_dir));
    }

    private static Action<FileStream> Text(string text) =>
        stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text));

    private static string[] Entries(string directory) =>
        Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order().ToArray()!;
}
