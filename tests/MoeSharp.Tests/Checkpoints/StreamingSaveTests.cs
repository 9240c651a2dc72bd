using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// <see cref="MoeLayerCheckpoint.Save"/> streams the experts from their owners: the file equals the gathered state.
/// </summary>
public sealed class StreamingSaveTests
{
    private static readonly MoeLayerArgs Args = new(dim: 12, hidden: 10, numExperts: 8, topK: 2)
    {
        SharedHidden = 6,
        SharedExpertGate = true,
        LoadBalancing = true,
    };

    [Theory]
    [InlineData(1, MoeLayerCheckpoint.SaveBlockBytes)]
    [InlineData(4, MoeLayerCheckpoint.SaveBlockBytes)]
    [InlineData(4, 3 * 4 * 12 * 4)] // three rows of every rank per block: 10 rows end in a partial block
    public void Save_from_every_rank_writes_the_gathered_state_bitwise(int world, int blockBytes)
    {
        var random = new Random(99);
        var weights = MoeLayer
            .CreateLocal(Args)
            .Parameters.Select(p => new KeyValuePair<string, Tensor>(
                p.Name,
                Tensor.FromArray(
                    Enumerable.Range(0, p.Value.ElementCount).Select(_ => (float)random.NextDouble()).ToArray(),
                    p.Value.ShapeArray()
                )
            ))
            .ToList();
        // One rank's local layer holds all 8 experts: full stacks.
        weights.Add(
            new(
                MoeLayerCheckpoint.ExpertBias,
                Tensor.FromArray(Enumerable.Range(0, 8).Select(i => i * 0.25f).ToArray(), 8)
            )
        );
        string path = Path.Combine(Path.GetTempPath(), $"moe-save-{Guid.NewGuid():N}.safetensors");
        try
        {
            var states = InProcessWorld.Run(
                world,
                w =>
                {
                    using var groups = ParallelGroups.Create(w, 1);
                    var layer = MoeLayer.Create(Args, new TokenDispatcherConfig(8, 2), groups);
                    MoeLayerCheckpoint.Load(layer, weights);
                    MoeLayerCheckpoint.SaveInBlocks(
                        layer,
                        path,
                        new Dictionary<string, string> { ["kind"] = "test" },
                        blockBytes
                    );
                    return MoeLayerCheckpoint.StateDict(layer);
                },
                TimeSpan.FromSeconds(60)
            );
            SafetensorsContent file = SafetensorsFile.Read(path);
            Assert.Equal(states[0].Select(kv => kv.Key), file.Names);
            foreach (var (name, tensor) in states[0])
                Assert.True(file[name].BitwiseEquals(tensor), name);
            foreach (var (name, tensor) in weights)
                Assert.True(file[name].BitwiseEquals(tensor), name);
            Assert.Equal("test", file.Metadata["kind"]);
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_incomplete_stream_leaves_no_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moe-partial-{Guid.NewGuid():N}.safetensors");
        using (
            var writer = new SafetensorsStreamWriter(path, [("a", DType.Float32, [2, 3]), ("b", DType.BFloat16, [4])])
        )
        {
            writer.Write("a", 0, [1, 2, 3, 4, 5, 6]);
            Assert.Throws<InvalidOperationException>(writer.Commit);
        }
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
    }

    [Fact]
    public void A_rename_that_fails_leaves_no_temporary_file()
    {
        // A directory where the file should go: the rename fails. The writer had marked itself committed before the
        // rename, so the temporary file stayed behind.
        string path = Directory.CreateTempSubdirectory("moe-in-the-way-").FullName;
        try
        {
            using (var writer = new SafetensorsStreamWriter(path, [("a", DType.Float32, [2])]))
            {
                writer.Write("a", 0, [1, 2]);
                Assert.ThrowsAny<IOException>(writer.Commit);
            }
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }

    [Fact]
    public void A_writer_over_the_callers_file_writes_in_place_and_leaves_the_file_open()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moe-over-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                using (var writer = SafetensorsStreamWriter.Over(file, [("a", DType.Float32, [2, 2])], null))
                {
                    writer.Write("a", 2, [3, 4]);
                    Assert.Throws<InvalidOperationException>(writer.Commit); // half of 'a'
                    writer.Write("a", 0, [1, 2]);
                    writer.Commit();
                }
                Assert.True(file.CanWrite); // the caller's to close (and to rename, with the rest of its set)
            }
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
            Assert.Equal([1f, 2, 3, 4], SafetensorsFile.Read(path).Get("a").AsSpan<float>().ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(long.MaxValue, 1)] // firstElement + 1 wrapped negative and passed: it wrote into tensor a
    [InlineData(long.MaxValue - 2, 4)]
    [InlineData(3, 2)]
    [InlineData(-1, 1)]
    public void A_write_past_the_tensor_is_out_of_range_and_touches_nothing(long firstElement, int count)
    {
        string path = Path.Combine(Path.GetTempPath(), $"moe-range-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (
                var writer = new SafetensorsStreamWriter(path, [("a", DType.Float32, [4]), ("b", DType.Float32, [4])])
            )
            {
                writer.Write("a", 0, [1, 2, 3, 4]);
                var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
                    writer.Write("b", firstElement, new float[count])
                );
                Assert.Equal("firstElement", e.ParamName);
                writer.Write("b", 0, [5, 6, 7, 8]);
                writer.Commit();
            }
            SafetensorsContent file = SafetensorsFile.Read(path);
            Assert.Equal([1f, 2, 3, 4], file["a"].AsSpan<float>().ToArray());
            Assert.Equal([5f, 6, 7, 8], file["b"].AsSpan<float>().ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(new long[] { 4611686018427387904 })] // 2^64 bytes: unchecked it came to 0
    [InlineData(new long[] { 4294967296, 4294967296 })] // 2^64 elements: a bare OverflowException
    [InlineData(new long[] { 2305843009213693952 })] // 2^63 bytes: one past long.MaxValue
    public void A_tensor_over_long_MaxValue_bytes_is_an_argument_error_and_leaves_no_file(long[] shape)
    {
        string path = Path.Combine(Path.GetTempPath(), $"moe-huge-{Guid.NewGuid():N}.safetensors");
        var e = Assert.Throws<ArgumentException>(() =>
            new SafetensorsStreamWriter(path, [("w", DType.Float32, shape)])
        );
        Assert.Equal("tensors", e.ParamName);
        Assert.Contains("tensor 'w'", e.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
    }

    [Fact]
    public void Tensors_that_end_past_long_MaxValue_together_are_an_argument_error()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moe-huge-{Guid.NewGuid():N}.safetensors");
        // Each is 2^62 bytes; the second ends at 2^63, one past long.MaxValue.
        long[] shape = [1L << 60];
        var e = Assert.Throws<ArgumentException>(() =>
            new SafetensorsStreamWriter(path, [("a", DType.Float32, shape), ("b", DType.Float32, shape)])
        );
        Assert.Contains("tensor 'b'", e.Message);
        Assert.False(File.Exists(path));
    }
}
