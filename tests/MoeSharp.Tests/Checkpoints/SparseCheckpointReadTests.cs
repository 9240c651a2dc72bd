using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoeSharp.Checkpoints;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using Xunit.Abstractions;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// Loading one layer of a large many-shard checkpoint: a Qwen3-MoE-layout checkpoint of 32 layers over 8 shards
/// (about 1.6 GB as files) whose bytes are holes except the one layer under test, with tensors of dtypes MoeSharp
/// does not read beside it. Each of 4 ranks must read at most 1.1× the bytes of its own tensors and allocate at most
/// 1.2× its float32 share of the layer while building and loading it.
/// </summary>
public sealed class SparseCheckpointReadTests(ITestOutputHelper output)
{
    private const int Layers = 32,
        Shards = 8,
        D = 512,
        H = 256,
        E = 64,
        K = 4,
        Layer = 13,
        World = 4;

    [Fact]
    public void One_layer_of_a_many_shard_checkpoint_reads_only_the_ranks_bytes()
    {
        string folder = Directory.CreateTempSubdirectory("moe-sparse-").FullName;
        try
        {
            long logical = WriteSparseCheckpoint(folder);
            HfMoeConfig config = HfMoeConfig.Read(folder);
            var results = InProcessWorld.Run(
                World,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 1);
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    var layer = MoeLayer.Create(config.Args, new TokenDispatcherConfig(E, K), groups);
                    using var checkpoint = SafetensorsCheckpoint.Open(folder);
                    HfMoeLayerLoader.Load(layer, checkpoint, config, Layer);
                    long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                    long share = layer.Parameters.Sum(p => p.Value.ByteCount);
                    long needed = HfMoeLayerLoader.RankBytes(layer, checkpoint, config, Layer);
                    CheckValues(layer);
                    return (checkpoint.BytesRead, needed, allocated, share, checkpoint.OpenedFiles.Count);
                },
                TimeSpan.FromSeconds(120)
            );
            foreach (var (read, needed, allocated, share, files) in results)
            {
                output.WriteLine(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"checkpoint {logical:N0} bytes: read {read:N0} for {needed:N0} needed ({(double)read / needed:F3}×) from {files} shard(s); "
                            + $"allocated {allocated:N0} for a float32 share of {share:N0} ({(double)allocated / share:F3}×)"
                    )
                );
                Assert.True(read <= 1.1 * needed, $"read {read} bytes for {needed}");
                Assert.True(allocated <= 1.2 * share, $"allocated {allocated} bytes for a share of {share}");
                Assert.Equal(1, files);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The value written at element i of a layer-13 tensor: exact in bfloat16, different per tensor.</summary>
    private static float Value(int tensorSeed, long i) => ((tensorSeed * 31 + i * 7) % 251 - 125) / 256f;

    private static int Seed(string name) => name.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0xFFFF;

    private static void CheckValues(MoeLayer layer)
    {
        var config = HfMoeConfig.Parse(ConfigJson(), "test");
        string gate = config.GateName(Layer);
        Assert.Equal(Value(Seed(gate), 5 * D + 3), layer.Router.GateWeight.AsSpan<float>()[5 * D + 3]);
        for (int j = 0; j < layer.Experts.NumLocalExperts; j += 7)
        {
            var (g, _, down) = config.ExpertNames(Layer, layer.FirstExpert + j);
            Assert.Equal(Value(Seed(g), 100), layer.Experts.W1.AsSpan<float>()[j * H * D + 100]);
            Assert.Equal(Value(Seed(down), D * H - 1), layer.Experts.W2.AsSpan<float>()[j * D * H + D * H - 1]);
        }
    }

    private static string ConfigJson() =>
        JsonSerializer.Serialize(
            new Dictionary<string, object>
            {
                ["model_type"] = "qwen3_moe",
                ["hidden_size"] = D,
                ["moe_intermediate_size"] = H,
                ["num_experts"] = E,
                ["num_experts_per_tok"] = K,
                ["norm_topk_prob"] = true,
                ["num_hidden_layers"] = Layers,
                ["decoder_sparse_step"] = 1,
                ["mlp_only_layers"] = Array.Empty<int>(),
                ["torch_dtype"] = "bfloat16",
            }
        );

    /// <summary>
    /// Writes config, index and shards; only layer 13's MoE tensors get bytes, everything else is a hole.
    /// </summary>
    private static long WriteSparseCheckpoint(string folder)
    {
        File.WriteAllText(Path.Combine(folder, "config.json"), ConfigJson());
        HfMoeConfig config = HfMoeConfig.Parse(ConfigJson(), "test");
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        for (int shard = 0; shard < Shards; shard++)
        {
            string file = string.Create(
                CultureInfo.InvariantCulture,
                $"model-{shard + 1:D5}-of-{Shards:D5}.safetensors"
            );
            var tensors = new List<(string Name, string DType, long[] Shape)>();
            for (int layer = shard * Layers / Shards; layer < (shard + 1) * Layers / Shards; layer++)
            {
                string p = string.Create(CultureInfo.InvariantCulture, $"model.layers.{layer}.");
                // Modules the loader must skip, in dtypes it does not read.
                tensors.Add((p + "self_attn.q_proj.weight", "F8_E5M2", [D, D]));
                tensors.Add((p + "self_attn.k_proj.weight", "I8", [D, D]));
                tensors.Add((p + "input_layernorm.weight", "F64", [D]));
                tensors.Add((config.GateName(layer), "BF16", [E, D]));
                for (int e = 0; e < E; e++)
                {
                    var (g, u, down) = config.ExpertNames(layer, e);
                    tensors.Add((g, "BF16", [H, D]));
                    tensors.Add((u, "BF16", [H, D]));
                    tensors.Add((down, "BF16", [D, H]));
                }
            }
            total += WriteShard(Path.Combine(folder, file), tensors);
            foreach (var t in tensors)
                weightMap[t.Name] = file;
        }
        File.WriteAllText(
            Path.Combine(folder, SafetensorsCheckpoint.IndexFileName),
            JsonSerializer.Serialize(new { metadata = new { total_size = total }, weight_map = weightMap })
        );
        return total;
    }

    private static long WriteShard(string path, List<(string Name, string DType, long[] Shape)> tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        var offsets = new List<long>();
        foreach (var (name, dtype, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * StoredElementTypes.SizeOf(dtype);
            header[name] = new
            {
                dtype,
                shape,
                data_offsets = new[] { offset, offset + bytes },
            };
            offsets.Add(offset);
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        long dataStart = 8 + padded;
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        var prefix = new byte[dataStart];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        json.CopyTo(prefix, 8);
        prefix.AsSpan(8 + json.Length).Fill((byte)' ');
        file.Write(prefix);
        file.SetLength(dataStart + offset); // holes: nothing else is written
        string layerPrefix = string.Create(CultureInfo.InvariantCulture, $"model.layers.{Layer}.mlp.");
        for (int i = 0; i < tensors.Count; i++)
        {
            var (name, _, shape) = tensors[i];
            if (!name.StartsWith(layerPrefix, StringComparison.Ordinal))
                continue;
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var bytes = new byte[count * 2];
            int seed = Seed(name);
            for (long j = 0; j < count; j++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(
                    bytes.AsSpan((int)j * 2),
                    BFloat16.FromSingle(Value(seed, j)).Bits
                );
            }
            file.Position = dataStart + offsets[i];
            file.Write(bytes);
        }
        return dataStart + offset;
    }
}
