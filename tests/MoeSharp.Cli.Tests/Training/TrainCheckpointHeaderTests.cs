using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoeSharp.Tensors;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>moe train --load</c> checks the checkpoint's step and options from the two files' headers only: each file here
/// carries a real checkpoint's metadata over a 256 MiB data block that is never written (a sparse file), and the check
/// must refuse or accept the checkpoint without reading that block (it read both files whole, 512 MiB, before).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrainCheckpointHeaderTests : IDisposable
{
    /// <summary>Each file's data block: F32 [2^26].</summary>
    private const long PaddingElements = 1L << 26;

    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Load_FinishedRun_RefusedFromTheHeadersAlone()
    {
        string saved = SaveAtStepTwo();
        string sparse = Path.Combine(_dir, "sparse");
        Directory.CreateDirectory(sparse);
        foreach (string file in new[] { "trainer.safetensors", "layer.safetensors" })
            WriteSparse(Path.Combine(sparse, file), MetadataOf(Path.Combine(saved, file)));

        // The check runs on the calling thread before any rank starts.
        long before = GC.GetAllocatedBytesForCurrentThread();
        CliOutcome result = Invoke(["train", "--steps", "2", "--load", sparse, .. SmallTrain]);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("already at step 2", AssertUsageError(result));
        Assert.True(allocated < 32L << 20, $"{allocated >> 20} MiB allocated");
    }

    [Fact]
    public void Load_FilesAtDifferentSteps_StillNamedAnInterruptedSave()
    {
        string saved = SaveAtStepTwo();
        string sparse = Path.Combine(_dir, "sparse");
        Directory.CreateDirectory(sparse);
        WriteSparse(
            Path.Combine(sparse, "trainer.safetensors"),
            MetadataOf(Path.Combine(saved, "trainer.safetensors"))
        );
        var layer = new Dictionary<string, string>(MetadataOf(Path.Combine(saved, "layer.safetensors")))
        {
            ["step"] = "1",
        };
        WriteSparse(Path.Combine(sparse, "layer.safetensors"), layer);

        string line = AssertUsageError(Invoke(["train", "--steps", "4", "--load", sparse, .. SmallTrain]));
        Assert.EndsWith(
            "layer.safetensors is at step 1 but trainer.safetensors at step 2 (an interrupted save?)",
            line
        );
    }

    [Fact]
    public void Load_NotATrainCheckpoint_NamesTheFile()
    {
        string sparse = Path.Combine(_dir, "sparse");
        Directory.CreateDirectory(sparse);
        string trainer = Path.Combine(sparse, "trainer.safetensors");
        WriteSparse(trainer, new Dictionary<string, string> { ["format"] = "pt" });
        WriteSparse(Path.Combine(sparse, "layer.safetensors"), new Dictionary<string, string>());

        string line = AssertUsageError(Invoke(["train", "--steps", "4", "--load", sparse, .. SmallTrain]));
        Assert.Equal(
            $"moe: --load {sparse}: {trainer}: not a checkpoint of moe train (metadata 'format' is not "
                + "moesharp-train-checkpoint/1)",
            line
        );
    }

    [Fact]
    public void Load_OverlappingData_IsRefusedByTheHeaderCheck_BeforeAnyRankStarts()
    {
        // Before, the header-only check let overlapping data ranges pass and every rank's load failed on them (exit 3).
        string saved = SaveAtStepTwo();
        string sparse = Path.Combine(_dir, "sparse");
        Directory.CreateDirectory(sparse);
        string layer = Path.Combine(sparse, "layer.safetensors");
        File.Copy(Path.Combine(saved, "trainer.safetensors"), Path.Combine(sparse, "trainer.safetensors"));
        WriteSparse(layer, MetadataOf(Path.Combine(saved, "layer.safetensors")), overlapping: true);

        string line = AssertUsageError(Invoke(["train", "--steps", "4", "--load", sparse, .. SmallTrain]));
        Assert.StartsWith($"moe: --load {sparse}: ", line);
        Assert.EndsWith(
            "layer.safetensors: tensor 'padding': data_offsets [0, 268435456] overlap tensor 'overlap' at [0, 4]",
            line
        );
    }

    /// <summary>A real checkpoint of the small run after two steps.</summary>
    private string SaveAtStepTwo()
    {
        string checkpoint = Path.Combine(_dir, "saved");
        CliOutcome saved = Invoke(["train", "--steps", "2", "--save", checkpoint, .. SmallTrain]);
        Assert.True(saved.ExitCode == 0, saved.ToString());
        return checkpoint;
    }

    private static IReadOnlyDictionary<string, string> MetadataOf(string path)
    {
        using LazySafetensorsFile file = LazySafetensorsFile.Open(path);
        return new Dictionary<string, string>(file.Metadata);
    }

    /// <summary>
    /// A safetensors file with <paramref name="metadata"/> and one F32 tensor of <see cref="PaddingElements"/> whose
    /// bytes are never written: the file is extended to their length (sparse), so it costs no memory and no disk.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="metadata">Its metadata.</param>
    /// <param name="overlapping">Also an F32 [1] tensor over the padding's first 4 bytes.</param>
    private static void WriteSparse(string path, IReadOnlyDictionary<string, string> metadata, bool overlapping = false)
    {
        long bytes = PaddingElements * sizeof(float);
        var header = new Dictionary<string, object>
        {
            ["__metadata__"] = metadata,
            ["padding"] = new
            {
                dtype = "F32",
                shape = new[] { PaddingElements },
                data_offsets = new[] { 0, bytes },
            },
        };
        if (overlapping)
            header["overlap"] = new
            {
                dtype = "F32",
                shape = new[] { 1 },
                data_offsets = new[] { 0, 4 },
            };
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using FileStream file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        file.SetLength(file.Position + bytes);
    }
}
