using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Layer;

/// <summary>Loading and saving layer weights: golden names, Hugging Face names, and clear errors.</summary>
public sealed class MoeLayerCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("moesharp-ckpt-").FullName;

    private static readonly MoeLayerArgs Args = new(dim: 6, hidden: 5, numExperts: 4, topK: 2)
    {
        SharedHidden = 3,
        LoadBalancing = true,
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Golden_names_save_and_load_round_trip()
    {
        var weights = MoeLayerInvarianceTests.RandomWeights(Args, new Random(1));
        MoeLayer layer = MoeLayer.CreateLocal(Args);
        MoeLayerCheckpoint.Load(layer, weights);
        string path = Path.Combine(_folder, "layer.safetensors");
        MoeLayerCheckpoint.Save(layer, path);

        MoeLayer loaded = MoeLayer.CreateLocal(Args);
        MoeLayerCheckpoint.Load(loaded, path);
        foreach (var (name, tensor) in weights)
        {
            Assert.True(
                tensor.BitwiseEquals(MoeLayerCheckpoint.StateDict(loaded).Single(kv => kv.Key == name).Value),
                name
            );
        }
    }

    [Fact]
    public void A_rank_keeps_its_own_slice_of_the_experts()
    {
        var weights = MoeLayerInvarianceTests.RandomWeights(Args, new Random(2));
        Tensor w2 = weights.Single(kv => kv.Key == MoeLayerCheckpoint.ExpertsW2).Value;
        MoeSharp.Collectives.InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = MoeSharp.Dispatch.ParallelGroups.Create(world, 1);
                MoeLayer layer = MoeLayer.Create(Args, new MoeSharp.Dispatch.TokenDispatcherConfig(4, 2), groups);
                MoeLayerCheckpoint.Load(layer, weights);
                Assert.Equal(2 * world.Rank, layer.FirstExpert);
                Assert.True(layer.Experts.W2.Row<float>(1).SequenceEqual(w2.Row<float>(2 * world.Rank + 1)));
                // Saving gathers every expert back.
                Assert.True(
                    w2.BitwiseEquals(
                        MoeLayerCheckpoint.StateDict(layer).Single(kv => kv.Key == MoeLayerCheckpoint.ExpertsW2).Value
                    )
                );
            }
        );
    }

    [Fact]
    public void A_rank_loads_only_its_own_experts_and_ends_up_as_from_the_stacked_tensors()
    {
        var weights = MoeLayerInvarianceTests.RandomWeights(Args, new Random(6));
        MoeSharp.Collectives.InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = MoeSharp.Dispatch.ParallelGroups.Create(world, 1);
                MoeLayer layer = MoeLayer.Create(Args, new MoeSharp.Dispatch.TokenDispatcherConfig(4, 2), groups);
                // Each rank hands over experts [2r, 2r + 2) only: [2, H, D] and [2, D, H].
                MoeLayerCheckpoint.LoadLocalExperts(layer, weights.Select(kv => OwnExperts(kv, 2 * world.Rank, 2)));
                var state = MoeLayerCheckpoint.StateDict(layer);
                foreach (var (name, tensor) in weights)
                    Assert.True(tensor.BitwiseEquals(state.Single(kv => kv.Key == name).Value), name);
            }
        );
    }

    [Fact]
    public void Loading_own_experts_refuses_the_stacked_tensors_of_all_experts_and_changes_nothing()
    {
        var weights = MoeLayerInvarianceTests.RandomWeights(Args, new Random(7));
        MoeSharp.Collectives.InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = MoeSharp.Dispatch.ParallelGroups.Create(world, 1);
                MoeLayer layer = MoeLayer.Create(Args, new MoeSharp.Dispatch.TokenDispatcherConfig(4, 2), groups);
                var error = Assert.Throws<InvalidDataException>(() =>
                    MoeLayerCheckpoint.LoadLocalExperts(layer, weights, "initial weights")
                );
                Assert.Contains("'experts.w1'", error.Message);
                Assert.Contains("[4, 5, 6]", error.Message);
                Assert.Contains("[2, 5, 6]", error.Message);
                Assert.Contains("initial weights", error.Message);
                Assert.All(layer.Router.GateWeight.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
            }
        );
    }

    /// <summary>A stacked expert tensor cut to <paramref name="count"/> experts from <paramref name="first"/> on;
    /// any other tensor as it is.</summary>
    private static KeyValuePair<string, Tensor> OwnExperts(KeyValuePair<string, Tensor> kv, int first, int count)
    {
        if (
            kv.Key is not (MoeLayerCheckpoint.ExpertsW1 or MoeLayerCheckpoint.ExpertsW2 or MoeLayerCheckpoint.ExpertsW3)
        )
            return kv;
        int rows = kv.Value.Dim(1),
            columns = kv.Value.Dim(2);
        float[] own = kv.Value.AsSpan<float>().Slice(first * rows * columns, count * rows * columns).ToArray();
        return new(kv.Key, Tensor.FromArray(own, count, rows, columns));
    }

    [Fact]
    public void Hugging_Face_names_round_trip_with_a_prefix()
    {
        var weights = MoeLayerInvarianceTests.RandomWeights(Args, new Random(3));
        string path = Path.Combine(_folder, "hf.safetensors");
        const string prefix = "model.layers.0.mlp.";
        var hf = MoeLayerCheckpoint.ToHuggingFace(weights, prefix);
        Assert.Contains(
            hf,
            kv => kv.Key == "model.layers.0.mlp.experts.3.down_proj.weight" && kv.Value.Shape.SequenceEqual([6, 5])
        );
        Assert.Contains(hf, kv => kv.Key == "model.layers.0.mlp.shared_expert.up_proj.weight");
        SafetensorsFile.Write(path, hf);

        MoeLayer layer = MoeLayer.CreateLocal(Args);
        MoeLayerCheckpoint.LoadHuggingFace(layer, path, prefix);
        var state = MoeLayerCheckpoint.StateDict(layer);
        foreach (var (name, tensor) in weights)
        {
            Assert.True(tensor.BitwiseEquals(state.Single(kv => kv.Key == name).Value), name);
        }
    }

    [Fact]
    public void A_missing_tensor_names_the_tensor_the_shape_and_the_file()
    {
        var weights = MoeLayerInvarianceTests
            .RandomWeights(Args, new Random(4))
            .Where(kv => kv.Key != MoeLayerCheckpoint.SharedW2)
            .ToList();
        string path = Path.Combine(_folder, "missing.safetensors");
        SafetensorsFile.Write(path, weights);
        MoeLayer layer = MoeLayer.CreateLocal(Args);
        var error = Assert.Throws<InvalidDataException>(() => MoeLayerCheckpoint.Load(layer, path));
        Assert.Contains("'shared.w2'", error.Message);
        Assert.Contains("[6, 3]", error.Message);
        Assert.Contains(path, error.Message);
        // Nothing was half-loaded.
        Assert.All(layer.Router.GateWeight.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));

        var hfError = Assert.Throws<InvalidDataException>(() =>
            MoeLayerCheckpoint.LoadHuggingFace(layer, path, "model.")
        );
        Assert.Contains("'model.gate.weight'", hfError.Message);
    }

    [Fact]
    public void A_mis_shaped_tensor_names_expected_and_actual_shapes()
    {
        var weights = MoeLayerInvarianceTests
            .RandomWeights(Args, new Random(5))
            .Select(kv =>
                kv.Key == MoeLayerCheckpoint.ExpertsW1
                    ? new KeyValuePair<string, Tensor>(kv.Key, Tensor.Zeros(DType.Float32, 4, 6, 5))
                    : kv
            )
            .ToList();
        string path = Path.Combine(_folder, "shape.safetensors");
        SafetensorsFile.Write(path, weights);
        var error = Assert.Throws<InvalidDataException>(() =>
            MoeLayerCheckpoint.Load(MoeLayer.CreateLocal(Args), path)
        );
        Assert.Contains("'experts.w1'", error.Message);
        Assert.Contains("[4, 6, 5]", error.Message);
        Assert.Contains("[4, 5, 6]", error.Message);
        Assert.Contains(path, error.Message);
    }
}
